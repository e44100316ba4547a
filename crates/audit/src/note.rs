//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 keys.
//!
//! A signed note is a text that ends in a newline, a blank line, and one or
//! more signature lines `— <key name> <base64(key hash ‖ signature)>`. The
//! signature covers the text bytes, final newline included. The format and
//! the key strings are those of Go's `golang.org/x/mod/sumdb/note`, so notes
//! written here open there and the other way round.
//!
//! ```
//! use airlock_audit::note::{self, Signer};
//!
//! let signer = Signer::generate("example.com/log")?;
//! let signed = note::sign("hello\n", &signer)?;
//! let opened = note::open(&signed, &[signer.verifier()])?;
//! assert_eq!(opened.text, "hello\n");
//! # Ok::<(), note::NoteError>(())
//! ```

use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use fs_err::os::unix::fs::OpenOptionsExt as _;
use sha2::{Digest as _, Sha256};

/// The signature type byte for Ed25519 in key hashes and key strings.
const ALG_ED25519: u8 = 0x01;

/// Every signature line starts with an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Go's reference implementation stops at 100 signatures; so do we, so that a
/// hostile note cannot make us spend unbounded time.
const MAX_SIGNATURES: usize = 100;

/// Mode bits of a key file that let anyone but the owner read or write it.
const GROUP_OTHER_BITS: u32 = 0o077;

/// What went wrong while handling keys or signed notes.
#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    /// A key name is empty or holds a `+` or whitespace.
    #[error("invalid key name {name:?}: it must be non-empty and hold no '+' or whitespace")]
    InvalidKeyName {
        /// The rejected name.
        name: String,
    },
    /// A verifier or signer key string does not have the expected shape.
    #[error("malformed {kind} key: {reason}")]
    MalformedKey {
        /// `"verifier"` or `"signer"`.
        kind: &'static str,
        /// What is wrong with it (never the secret itself).
        reason: String,
    },
    /// A key string names a key hash that does not match its name and key.
    #[error("key hash mismatch for key {name:?}: the key string says {stated}, the key hashes to {computed}")]
    KeyHashMismatch {
        /// The key name.
        name: String,
        /// The key hash written in the key string, in hex.
        stated: String,
        /// The key hash computed from name and key, in hex.
        computed: String,
    },
    /// A key string uses a signature type other than Ed25519.
    #[error("unsupported signature type 0x{alg:02x} for key {name:?} (only Ed25519, 0x01, is supported)")]
    UnsupportedAlgorithm {
        /// The key name.
        name: String,
        /// The signature type byte found.
        alg: u8,
    },
    /// The text given to [`sign`] cannot be the text of a note.
    #[error("cannot sign this text: {reason}")]
    InvalidText {
        /// Why the text is rejected.
        reason: &'static str,
    },
    /// The signed note does not follow the signed-note format.
    #[error("malformed signed note: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: String,
    },
    /// No signature in the note is by one of the keys we were asked to trust.
    #[error("no signature by a known key; the note is signed by: {}", .signed_by.join(", "))]
    UnknownKey {
        /// The signing keys found, as `name+keyhash`.
        signed_by: Vec<String>,
    },
    /// A signature by a known key does not verify: the text or the
    /// signature was changed, or it was made with another key of that name.
    #[error("bad signature by key {name:?}: the note was altered or not signed by this key")]
    BadSignature {
        /// The name of the key whose signature failed.
        name: String,
    },
    /// The operating system's random source failed.
    #[error("could not get randomness for a new key: {reason}")]
    Random {
        /// The error from the random source.
        reason: String,
    },
    /// Reading, creating or writing a key file failed (the message names the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// An existing key file may be read or written by group or others.
    #[error(
        "refusing to use key file {}: its mode {mode:04o} lets group or others access it\nhint: chmod 600 {}",
        .path.display(),
        .path.display()
    )]
    KeyFilePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// An existing key file does not hold a valid signer key.
    #[error("key file {} does not hold a valid signer key", .path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with its contents.
        #[source]
        source: Box<NoteError>,
    },
    /// An existing key file holds a key with a name other than the one asked for.
    #[error("key file {} holds a key named {found:?}, expected {expected:?}", .path.display())]
    KeyFileName {
        /// The key file.
        path: PathBuf,
        /// The name asked for.
        expected: String,
        /// The name of the key in the file.
        found: String,
    },
}

/// An Ed25519 signing key with its name: what a log uses to sign notes.
#[derive(Clone)]
pub struct Signer {
    name: String,
    key: SigningKey,
}

// Hand-written so that the secret key never lands in a log line.
impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("name", &self.name).field("verifier", &self.verifier().to_key_string()).finish()
    }
}

impl Signer {
    /// Makes a new signer named `name` with a random key from the operating system.
    pub fn generate(name: &str) -> Result<Signer, NoteError> {
        check_name(name)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|err| NoteError::Random { reason: err.to_string() })?;
        let key = SigningKey::from_bytes(&seed);
        seed.fill(0);
        Ok(Signer { name: name.to_owned(), key })
    }

    /// Parses a signer key string `PRIVATE+KEY+<name>+<hex key hash>+<base64(0x01 ‖ seed)>`.
    pub fn from_key_string(skey: &str) -> Result<Signer, NoteError> {
        let malformed = |reason: &str| NoteError::MalformedKey { kind: "signer", reason: reason.to_owned() };
        let skey = skey.trim_end_matches(['\n', '\r']);
        let rest = skey.strip_prefix("PRIVATE+KEY+").ok_or_else(|| malformed("it does not start with PRIVATE+KEY+"))?;
        let (name, rest) = rest.split_once('+').ok_or_else(|| malformed("it has no key hash after the name"))?;
        let (hash_hex, key_b64) = rest.split_once('+').ok_or_else(|| malformed("it has no key after the key hash"))?;
        check_name(name)?;
        let stated = parse_key_hash(hash_hex).ok_or_else(|| malformed("the key hash is not 8 hex digits"))?;
        let key = STANDARD.decode(key_b64).map_err(|_| malformed("the key is not valid base64"))?;
        let (&alg, seed) = key.split_first().ok_or_else(|| malformed("the key is empty"))?;
        if alg != ALG_ED25519 {
            return Err(NoteError::UnsupportedAlgorithm { name: name.to_owned(), alg });
        }
        let seed: [u8; 32] = seed.try_into().map_err(|_| malformed("an Ed25519 seed must be 32 bytes"))?;
        let signer = Signer { name: name.to_owned(), key: SigningKey::from_bytes(&seed) };
        let computed = key_hash(name, &signer.key.verifying_key());
        if computed != stated {
            return Err(NoteError::KeyHashMismatch {
                name: name.to_owned(),
                stated: hex4(stated),
                computed: hex4(computed),
            });
        }
        Ok(signer)
    }

    /// The signer key string, `PRIVATE+KEY+<name>+<hex key hash>+<base64(0x01 ‖ seed)>`.
    /// It holds the secret key: keep it out of logs.
    pub fn to_key_string(&self) -> String {
        let mut key = Vec::with_capacity(33);
        key.push(ALG_ED25519);
        key.extend_from_slice(self.key.as_bytes());
        let hash = key_hash(&self.name, &self.key.verifying_key());
        format!("PRIVATE+KEY+{}+{}+{}", self.name, hex4(hash), STANDARD.encode(&key))
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier (public key) that checks this signer's signatures.
    pub fn verifier(&self) -> Verifier {
        let key = self.key.verifying_key();
        Verifier { key_hash: key_hash(&self.name, &key), name: self.name.clone(), key }
    }
}

/// An Ed25519 public key with its name: what anyone uses to check a note offline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    key_hash: [u8; 4],
    key: VerifyingKey,
}

impl Verifier {
    /// Parses a verifier key string `<name>+<hex key hash>+<base64(0x01 ‖ public key)>`.
    pub fn from_key_string(vkey: &str) -> Result<Verifier, NoteError> {
        let malformed = |reason: &str| NoteError::MalformedKey { kind: "verifier", reason: reason.to_owned() };
        let vkey = vkey.trim_end_matches(['\n', '\r']);
        let (name, rest) = vkey.split_once('+').ok_or_else(|| malformed("it has no key hash after the name"))?;
        let (hash_hex, key_b64) = rest.split_once('+').ok_or_else(|| malformed("it has no key after the key hash"))?;
        check_name(name)?;
        let stated = parse_key_hash(hash_hex).ok_or_else(|| malformed("the key hash is not 8 hex digits"))?;
        let key = STANDARD.decode(key_b64).map_err(|_| malformed("the key is not valid base64"))?;
        let (&alg, public) = key.split_first().ok_or_else(|| malformed("the key is empty"))?;
        if alg != ALG_ED25519 {
            return Err(NoteError::UnsupportedAlgorithm { name: name.to_owned(), alg });
        }
        let public: [u8; 32] = public.try_into().map_err(|_| malformed("an Ed25519 public key must be 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&public).map_err(|_| malformed("not a valid Ed25519 public key"))?;
        let computed = key_hash(name, &key);
        if computed != stated {
            return Err(NoteError::KeyHashMismatch {
                name: name.to_owned(),
                stated: hex4(stated),
                computed: hex4(computed),
            });
        }
        Ok(Verifier { name: name.to_owned(), key_hash: computed, key })
    }

    /// The verifier key string, `<name>+<hex key hash>+<base64(0x01 ‖ public key)>`.
    pub fn to_key_string(&self) -> String {
        let mut key = Vec::with_capacity(33);
        key.push(ALG_ED25519);
        key.extend_from_slice(self.key.as_bytes());
        format!("{}+{}+{}", self.name, hex4(self.key_hash), STANDARD.encode(&key))
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key hash: the first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key).
    pub fn key_hash(&self) -> [u8; 4] {
        self.key_hash
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }
}

/// A note whose signatures were checked by [`open`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The note text, ending in a newline.
    pub text: String,
    /// The trusted verifiers whose signatures verified, in signature order.
    pub verified_by: Vec<Verifier>,
    /// Signatures by keys not among the trusted verifiers, as `name+keyhash`;
    /// they were not checked.
    pub unknown: Vec<String>,
}

/// Signs `text` and returns the whole signed note: the text, a blank line and
/// one signature line.
///
/// The text must end in a newline, hold no blank line and no ASCII control
/// character other than newline, so that the note opens unambiguously.
pub fn sign(text: &str, signer: &Signer) -> Result<String, NoteError> {
    check_text(text)?;
    let signature = signer.key.sign(text.as_bytes());
    let mut blob = Vec::with_capacity(4 + 64);
    blob.extend_from_slice(&key_hash(&signer.name, &signer.key.verifying_key()));
    blob.extend_from_slice(&signature.to_bytes());
    Ok(format!("{text}\n{SIGNATURE_PREFIX}{} {}\n", signer.name, STANDARD.encode(&blob)))
}

/// Parses a signed note and checks its signatures against `verifiers`.
///
/// Succeeds when at least one signature is by a trusted verifier (same name
/// and key hash) and every such signature verifies. Signatures by other keys
/// are listed in [`Opened::unknown`] and otherwise ignored, as the spec says.
pub fn open(note: &str, verifiers: &[Verifier]) -> Result<Opened, NoteError> {
    let malformed = |reason: String| NoteError::Malformed { reason };
    if let Some(c) = note.chars().find(|&c| c < ' ' && c != '\n') {
        return Err(malformed(format!("it holds the control character {c:?}")));
    }
    // Signature lines are never empty, so the last blank line starts them.
    let split = note.rfind("\n\n").ok_or_else(|| malformed("no blank line between text and signatures".to_owned()))?;
    let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
    if signatures.is_empty() {
        return Err(malformed("no signature lines after the blank line".to_owned()));
    }
    let Some(signatures) = signatures.strip_suffix('\n') else {
        return Err(malformed("the last signature line does not end in a newline".to_owned()));
    };

    let mut verified_by: Vec<Verifier> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    for (index, line) in signatures.split('\n').enumerate() {
        let number = index + 1;
        if number > MAX_SIGNATURES {
            return Err(malformed(format!("more than {MAX_SIGNATURES} signature lines")));
        }
        let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or_else(|| {
            malformed(format!("signature line {number} does not start with an em dash (U+2014) and a space: {line:?}"))
        })?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| malformed(format!("signature line {number} has no space between key name and signature")))?;
        if !is_valid_name(name) {
            return Err(malformed(format!("signature line {number} has an invalid key name {name:?}")));
        }
        let blob = STANDARD
            .decode(b64)
            .map_err(|err| malformed(format!("signature line {number} (key {name:?}) is not valid base64: {err}")))?;
        let Some((hash, signature)) = blob.split_first_chunk::<4>().filter(|(_, sig)| !sig.is_empty()) else {
            return Err(malformed(format!("signature line {number} (key {name:?}) is too short")));
        };
        let id = format!("{name}+{}", hex4(*hash));
        let Some(verifier) = verifiers.iter().find(|v| v.name == name && v.key_hash == *hash) else {
            if !unknown.contains(&id) {
                unknown.push(id);
            }
            continue;
        };
        if verified_by.iter().any(|v| v.name == name && v.key_hash == *hash) {
            return Err(malformed(format!("key {id} signed more than once")));
        }
        let signature =
            Signature::from_slice(signature).map_err(|_| NoteError::BadSignature { name: name.to_owned() })?;
        verifier
            .key
            .verify_strict(text.as_bytes(), &signature)
            .map_err(|_| NoteError::BadSignature { name: name.to_owned() })?;
        verified_by.push(verifier.clone());
    }
    if verified_by.is_empty() {
        return Err(NoteError::UnknownKey { signed_by: unknown });
    }
    Ok(Opened { text: text.to_owned(), verified_by, unknown })
}

/// Loads the signer key at `path`, or makes a new key named `name` and writes
/// it there (mode 0600) when the file does not exist yet.
///
/// An existing key file that group or others can access is refused: whoever
/// can read it can forge checkpoints.
pub fn load_or_create_signer(path: &Path, name: &str) -> Result<Signer, NoteError> {
    check_name(name)?;
    match load_signer(path, name) {
        Err(NoteError::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => {}
        other => return other,
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs_err::create_dir_all(parent)?;
    }
    let signer = Signer::generate(name)?;
    let mut file = match fs_err::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(file) => file,
        // Someone else created it between our two looks: use theirs.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => return load_signer(path, name),
        Err(err) => return Err(err.into()),
    };
    // The umask can only narrow 0600, but set it outright before any secret is written.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(format!("{}\n", signer.to_key_string()).as_bytes())?;
    file.sync_all()?;
    Ok(signer)
}

/// Reads and checks an existing key file.
fn load_signer(path: &Path, name: &str) -> Result<Signer, NoteError> {
    let mut file = fs_err::File::open(path)?;
    let mode = file.metadata()?.permissions().mode() & 0o7777;
    if mode & GROUP_OTHER_BITS != 0 {
        return Err(NoteError::KeyFilePermissions { path: path.to_owned(), mode });
    }
    let mut contents = String::new();
    file.read_to_string(&mut contents)?;
    let signer = Signer::from_key_string(contents.trim_end())
        .map_err(|err| NoteError::KeyFile { path: path.to_owned(), source: Box::new(err) })?;
    if signer.name != name {
        return Err(NoteError::KeyFileName {
            path: path.to_owned(),
            expected: name.to_owned(),
            found: signer.name.clone(),
        });
    }
    Ok(signer)
}

/// The key hash of an Ed25519 key: SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)[..4].
fn key_hash(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update(b"\n")
        .chain_update([ALG_ED25519])
        .chain_update(key.as_bytes())
        .finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// Whether `name` may name a key: non-empty, no `+`, no whitespace
/// (signed-note keys and cosignature keys alike).
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && !name.chars().any(char::is_whitespace)
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if is_valid_name(name) { Ok(()) } else { Err(NoteError::InvalidKeyName { name: name.to_owned() }) }
}

/// Why `text` cannot be the text of a signed note, if it cannot (notes and
/// cosigned checkpoints alike).
pub(crate) fn text_problem(text: &str) -> Option<&'static str> {
    if !text.ends_with('\n') {
        Some("it must end with a newline")
    } else if text.starts_with('\n') || text.contains("\n\n") {
        Some("it must not contain a blank line")
    } else if text.chars().any(|c| c < ' ' && c != '\n') {
        Some("it must not contain ASCII control characters other than newline")
    } else {
        None
    }
}

fn check_text(text: &str) -> Result<(), NoteError> {
    text_problem(text).map_or(Ok(()), |reason| Err(NoteError::InvalidText { reason }))
}

/// Parses exactly 8 hex digits.
fn parse_key_hash(hex: &str) -> Option<[u8; 4]> {
    if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(hex, 16).ok().map(u32::to_be_bytes)
}

fn hex4(hash: [u8; 4]) -> String {
    format!("{:08x}", u32::from_be_bytes(hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GO_SKEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str =
        "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const GO_SIGNATURE_LINE: &str = concat!(
        "\u{2014} PeterNeumann ",
        "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    );

    fn go_note() -> String {
        format!("{GO_TEXT}\n{GO_SIGNATURE_LINE}")
    }

    #[test]
    fn go_reference_vector_signs_byte_for_byte() {
        let signer = Signer::from_key_string(GO_SKEY).unwrap();
        assert_eq!(signer.to_key_string(), GO_SKEY);
        assert_eq!(signer.verifier().to_key_string(), GO_VKEY);
        assert_eq!(sign(GO_TEXT, &signer).unwrap(), go_note());
    }

    #[test]
    fn go_reference_vector_opens() {
        let verifier = Verifier::from_key_string(GO_VKEY).unwrap();
        assert_eq!(verifier.name(), "PeterNeumann");
        assert_eq!(verifier.key_hash(), [0xc7, 0x4f, 0x20, 0xa3]);
        let opened = open(&go_note(), std::slice::from_ref(&verifier)).unwrap();
        assert_eq!(opened.text, GO_TEXT);
        assert_eq!(opened.verified_by, vec![verifier]);
        assert!(opened.unknown.is_empty());
    }

    #[test]
    fn c2sp_spec_example_opens() {
        let verifier =
            Verifier::from_key_string("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k").unwrap();
        let note = concat!(
            "This is an example message.\n\n\u{2014} example.com/foo ",
            "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
        );
        assert_eq!(open(note, &[verifier]).unwrap().text, "This is an example message.\n");
    }

    #[test]
    fn key_hash_is_sha256_of_name_newline_type_and_key() {
        let signer = Signer::generate("audit.example/log").unwrap();
        let verifier = signer.verifier();
        let mut preimage = b"audit.example/log\n\x01".to_vec();
        preimage.extend_from_slice(&verifier.public_key());
        let digest = Sha256::digest(&preimage);
        assert_eq!(verifier.key_hash(), digest[..4]);
        let vkey = verifier.to_key_string();
        let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        let mut key = vec![0x01];
        key.extend_from_slice(&verifier.public_key());
        assert_eq!(vkey, format!("audit.example/log+{hex}+{}", STANDARD.encode(&key)));

        // The Go reference key, by hand: its published key hash is c74f20a3.
        let go = Verifier::from_key_string(GO_VKEY).unwrap();
        let mut preimage = b"PeterNeumann\n\x01".to_vec();
        preimage.extend_from_slice(&go.public_key());
        assert_eq!(Sha256::digest(&preimage)[..4], [0xc7, 0x4f, 0x20, 0xa3]);
    }

    #[test]
    fn key_strings_round_trip() {
        let signer = Signer::generate("round-trip").unwrap();
        let again = Signer::from_key_string(&signer.to_key_string()).unwrap();
        assert_eq!(again.to_key_string(), signer.to_key_string());
        let verifier = Verifier::from_key_string(&signer.verifier().to_key_string()).unwrap();
        assert_eq!(verifier, signer.verifier());
        assert!(!format!("{signer:?}").contains(&signer.to_key_string()));
    }

    #[test]
    fn sign_then_open_round_trips() {
        let signer = Signer::generate("a").unwrap();
        let signed = sign("one\ntwo\n", &signer).unwrap();
        let opened = open(&signed, &[signer.verifier()]).unwrap();
        assert_eq!(opened.text, "one\ntwo\n");
    }

    #[test]
    fn invalid_key_names_are_rejected() {
        for name in ["", "a+b", "a b", "a\tb"] {
            assert!(matches!(Signer::generate(name), Err(NoteError::InvalidKeyName { .. })), "{name:?}");
        }
    }

    #[test]
    fn key_string_with_wrong_hash_is_rejected() {
        let wrong = GO_VKEY.replace("c74f20a3", "c74f20a4");
        assert!(matches!(Verifier::from_key_string(&wrong), Err(NoteError::KeyHashMismatch { .. })));
        let wrong = GO_SKEY.replace("c74f20a3", "00000000");
        assert!(matches!(Signer::from_key_string(&wrong), Err(NoteError::KeyHashMismatch { .. })));
        assert!(matches!(Verifier::from_key_string("nohash"), Err(NoteError::MalformedKey { .. })));
    }

    #[test]
    fn sign_rejects_texts_that_cannot_be_notes() {
        let signer = Signer::generate("a").unwrap();
        for text in ["", "no newline", "a\n\nb\n", "\na\n", "tab\there\n"] {
            assert!(matches!(sign(text, &signer), Err(NoteError::InvalidText { .. })), "{text:?}");
        }
    }

    #[test]
    fn note_signed_by_another_key_is_rejected_naming_that_key() {
        let trusted = Signer::generate("trusted").unwrap();
        let other = Signer::generate("intruder").unwrap();
        let signed = sign("hello\n", &other).unwrap();
        let err = open(&signed, &[trusted.verifier()]).unwrap_err();
        let hash = hex4(other.verifier().key_hash());
        assert!(matches!(&err, NoteError::UnknownKey { signed_by } if *signed_by == vec![format!("intruder+{hash}")]));
        assert!(err.to_string().contains("intruder"), "{err}");
    }

    #[test]
    fn same_name_different_key_is_unknown() {
        let trusted = Signer::generate("log").unwrap();
        let impostor = Signer::generate("log").unwrap();
        let signed = sign("hello\n", &impostor).unwrap();
        assert!(matches!(open(&signed, &[trusted.verifier()]), Err(NoteError::UnknownKey { .. })));
    }

    #[test]
    fn unknown_signatures_beside_a_good_one_are_listed() {
        let good = Signer::generate("good").unwrap();
        let other = Signer::generate("other").unwrap();
        let signed = sign("hello\n", &good).unwrap();
        let other_line = sign("hello\n", &other).unwrap().split_off("hello\n\n".len());
        let opened = open(&format!("{signed}{other_line}"), &[good.verifier()]).unwrap();
        assert_eq!(opened.verified_by, vec![good.verifier()]);
        assert_eq!(opened.unknown.len(), 1);
    }

    #[test]
    fn tampered_text_is_a_bad_signature() {
        let signed = go_note().replace("cryptography", "cryptographY");
        let verifier = Verifier::from_key_string(GO_VKEY).unwrap();
        let err = open(&signed, &[verifier]).unwrap_err();
        assert!(matches!(&err, NoteError::BadSignature { name } if name == "PeterNeumann"), "{err}");
    }

    #[test]
    fn tampered_signature_is_a_bad_signature() {
        // Change one byte of the Ed25519 signature, keeping the key hash.
        let signed = go_note().replace("x08go/ZJ", "x08go/ZK");
        let verifier = Verifier::from_key_string(GO_VKEY).unwrap();
        assert!(matches!(open(&signed, &[verifier]), Err(NoteError::BadSignature { .. })));
    }

    #[test]
    fn malformed_notes_are_rejected_with_reasons() {
        let verifier = Verifier::from_key_string(GO_VKEY).unwrap();
        let cases = [
            (format!("{GO_TEXT}{GO_SIGNATURE_LINE}"), "no blank line"),
            (format!("{GO_TEXT}\n"), "no signature lines"),
            (go_note().trim_end().to_owned(), "does not end in a newline"),
            (go_note().replace('\u{2014}', "-"), "em dash"),
            (go_note().replace('\u{2014}', "\u{2013}"), "em dash"),
            (go_note().replace("x08go/", "x08go!"), "not valid base64"),
            (go_note().replace("AM=\n", "AM\n"), "not valid base64"),
            (format!("{GO_TEXT}\n\u{2014} PeterNeumann\n"), "no space"),
            (format!("{GO_TEXT}\n\u{2014} PeterNeumann AAAA\n"), "too short"),
            (format!("{}{GO_SIGNATURE_LINE}", go_note()), "more than once"),
            (go_note().replace("problem,", "problem,\r"), "control character"),
        ];
        for (note, want) in cases {
            let err = open(&note, std::slice::from_ref(&verifier)).unwrap_err();
            assert!(matches!(err, NoteError::Malformed { .. }), "{note:?}: {err}");
            assert!(err.to_string().contains(want), "{note:?}: {err} (want {want:?})");
        }
    }

    #[test]
    fn key_file_is_created_private_and_loaded_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("log.key");
        let created = load_or_create_signer(&path, "log").unwrap();
        let mode = fs_err::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = load_or_create_signer(&path, "log").unwrap();
        assert_eq!(loaded.to_key_string(), created.to_key_string());
        assert!(matches!(load_or_create_signer(&path, "other"), Err(NoteError::KeyFileName { .. })));
    }

    #[test]
    fn readable_key_file_is_refused_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.key");
        load_or_create_signer(&path, "log").unwrap();
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create_signer(&path, "log").unwrap_err();
        assert!(matches!(err, NoteError::KeyFilePermissions { mode: 0o644, .. }), "{err}");
        assert!(err.to_string().contains("hint: chmod 600"), "{err}");
    }

    #[test]
    fn garbage_key_file_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.key");
        fs_err::write(&path, "not a key\n").unwrap();
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = load_or_create_signer(&path, "log").unwrap_err();
        assert!(matches!(err, NoteError::KeyFile { .. }), "{err}");
        assert!(err.to_string().contains("log.key"), "{err}");
    }
}
