//! Pure predicates on candidate secrets: entropy, look-alikes, per-format validation.

use crate::rule::Check;

/// Shannon entropy of `bytes` in bits per byte.
pub fn shannon_entropy(bytes: &[u8]) -> f32 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[b as usize] += 1;
    }
    let len = bytes.len() as f32;
    counts.iter().filter(|&&c| c > 0).map(|&c| c as f32 / len).map(|p| -p * p.log2()).sum()
}

/// Words and shapes that mark a value as documentation or a template, not a live secret.
const PLACEHOLDER_WORDS: &[&str] = &[
    "example",
    "dummy",
    "placeholder",
    "changeme",
    "change_me",
    "change-me",
    "xxxx",
    "****",
    "lorem",
    "sample",
    "redacted",
];

/// True if `secret` looks like a placeholder, template or already-redacted value.
pub(crate) fn is_placeholder_like(secret: &[u8]) -> bool {
    let lower = secret.to_ascii_lowercase();
    let has = |needle: &[u8]| lower.windows(needle.len()).any(|w| w == needle);
    PLACEHOLDER_WORDS.iter().any(|w| has(w.as_bytes()))
        || has(b"your_")
        || has(b"your-")
        || lower.starts_with(b"your")
        || has(b"${")
        || has(b"{{")
        || has(b"}}")
        || has(b"%s")
        || has(b"%(")
        || is_mostly_one_char(secret)
        || has("«".as_bytes())
        || has("»".as_bytes())
        || (secret.contains(&b'<') && secret.contains(&b'>'))
}

/// `npm_000000…`, `ghp_aaaa…`: a value dominated by one character is filler, not a key.
fn is_mostly_one_char(secret: &[u8]) -> bool {
    if secret.len() < 16 {
        return false;
    }
    let mut counts = [0u16; 256];
    for &b in secret {
        counts[b as usize] = counts[b as usize].saturating_add(1);
    }
    counts.iter().copied().max().unwrap_or(0) as usize * 10 >= secret.len() * 6
}

fn is_hex(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_hexdigit)
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter()
            .enumerate()
            .all(|(i, &c)| if matches!(i, 8 | 13 | 18 | 23) { c == b'-' } else { c.is_ascii_hexdigit() })
}

/// Hex digests (sha1, sha256, sha512) and UUIDs are identifiers, not secrets.
fn is_digest_or_uuid(b: &[u8]) -> bool {
    (matches!(b.len(), 40 | 64 | 128) && is_hex(b)) || is_uuid(b)
}

/// Values that are clearly not literal secrets in `key = value` position.
const NON_SECRET_VALUES: &[&str] = &[
    "null",
    "none",
    "nil",
    "true",
    "false",
    "undefined",
    "password",
    "passwd",
    "secret",
    "required",
    "optional",
    "string",
    "str",
    "bearer",
    "basic",
    "token",
    "hidden",
];

/// Default or documentation credentials (`postgres:postgres@`, `guest:guest@`): not secrets.
const DEFAULT_CREDENTIALS: &[&str] = &[
    "password", "pass", "passwd", "pwd", "pw", "secret", "guest", "postgres", "root", "admin", "mysql", "redis",
    "test", "user",
];

/// Password hashes (bcrypt, crypt, argon2) are stored verifiers, not credentials.
fn is_password_hash(v: &[u8]) -> bool {
    ["$2a$", "$2b$", "$2y$", "$1$", "$5$", "$6$", "$argon2", "$pbkdf2", "$scrypt"]
        .iter()
        .any(|p| v.starts_with(p.as_bytes()))
}

/// Key suffixes that name something about a secret rather than the secret itself.
const DESCRIPTIVE_KEY_SUFFIXES: &[&str] = &[
    "url", "uri", "endpoint", "name", "names", "type", "file", "path", "dir", "length", "len", "count", "limit",
    "size", "field", "label", "prompt", "header", "expiry", "expires", "ttl", "format", "policy", "regex", "pattern",
    "env", "var", "ref", "arn", "version", "mode", "kind", "id",
];

fn is_word_like(v: &[u8]) -> bool {
    // snake_case, kebab-case, dotted or plain words without digits: identifiers, not secrets.
    v.iter().all(|&c| c.is_ascii_alphabetic() || matches!(c, b'_' | b'-' | b'.'))
}

fn char_classes(v: &[u8]) -> usize {
    let lower = v.iter().any(u8::is_ascii_lowercase) as usize;
    let upper = v.iter().any(u8::is_ascii_uppercase) as usize;
    let digit = v.iter().any(u8::is_ascii_digit) as usize;
    let other = v.iter().any(|c| !c.is_ascii_alphanumeric() && !matches!(c, b'_' | b'-' | b'.')) as usize;
    lower + upper + digit + other
}

/// Entropy a generic value needs: short values cannot reach 3 bits, so the bar scales down.
fn generic_entropy_threshold(len: usize) -> f32 {
    ((len as f32).log2() - 0.75).min(3.0)
}

/// The key of a `key = value` match: the text before the first quote, space or operator.
fn assignment_key(matched: &[u8]) -> &[u8] {
    let end =
        matched.iter().position(|c| matches!(c, b'"' | b'\'' | b' ' | b'\t' | b':' | b'=')).unwrap_or(matched.len());
    &matched[..end]
}

fn ends_with_descriptive_suffix(key: &[u8]) -> bool {
    let lower = key.to_ascii_lowercase();
    DESCRIPTIVE_KEY_SUFFIXES.iter().any(|s| {
        let s = s.as_bytes();
        lower.len() > s.len() && lower.ends_with(s) && matches!(lower[lower.len() - s.len() - 1], b'_' | b'-' | b'.')
            || (s.len() > 2 && lower.len() > s.len() && lower.ends_with(s) && {
                // camelCase: `tokenUrl`, `passwordLength`
                let start = key.len() - s.len();
                key[start].is_ascii_uppercase()
            })
    })
}

/// `value` (unquoted) refers to something else: a variable, call, path or type.
fn is_reference(value: &[u8]) -> bool {
    let has = |needle: &[u8]| value.windows(needle.len()).any(|w| w == needle);
    value.starts_with(b"$")
        || value.starts_with(b"&")
        || value.iter().any(|c| matches!(c, b'(' | b'[' | b'{' | b'<'))
        || has(b"::")
        || has(b"->")
        || has(b"process.env")
        || has(b"os.environ")
        || has(b"getenv")
        || has(b"secrets.")
        || is_dotted_identifier(value)
}

fn is_dotted_identifier(v: &[u8]) -> bool {
    !v.is_empty()
        && v.split(|&c| c == b'.').all(|seg| {
            !seg.is_empty()
                && (seg[0].is_ascii_alphabetic() || seg[0] == b'_')
                && seg.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        })
        && (v.contains(&b'.') || !v.iter().any(u8::is_ascii_digit))
}

fn common_value_rejects(value: &[u8]) -> bool {
    let lower = value.to_ascii_lowercase();
    NON_SECRET_VALUES.iter().any(|w| lower == w.as_bytes())
        || DEFAULT_CREDENTIALS.iter().any(|w| lower == w.as_bytes())
        || is_password_hash(value)
        || lower.starts_with(b"sha512-")
        || lower.starts_with(b"sha384-")
        || lower.starts_with(b"sha256-")
        || lower.starts_with(b"sha1-")
        || lower.starts_with(b"data:")
        || value.iter().all(|&c| c == value[0])
}

/// Applies a built-in rule's extra check. `matched` is the whole regex match, `secret` the secret.
pub(crate) fn passes(check: Check, matched: &[u8], secret: &[u8]) -> bool {
    match check {
        Check::None => true,
        Check::Assignment => {
            let quoted = secret_is_quoted(matched, secret);
            if common_value_rejects(secret)
                || is_digest_or_uuid(secret)
                || ends_with_descriptive_suffix(assignment_key(matched))
            {
                return false;
            }
            if secret.iter().all(u8::is_ascii_digit) {
                return false;
            }
            // Code, not a value: the `::` of a path (`token::Bracket`), a macro
            // (`stringify!`), a closure (`|tokens|`), or a word ending a sentence.
            let has = |needle: &[u8]| secret.windows(needle.len()).any(|w| w == needle);
            // Paths and lists, quoted or not: `"syn::token::Abstract"`, `"/dev/null"`, `"[62,70,27]"`.
            if secret.starts_with(b":")
                || has(b"::")
                || secret.ends_with(b":")
                || (secret.starts_with(b"/") && secret.iter().all(|c| c.is_ascii_alphabetic() || b"/_.-".contains(c)))
                || (secret.starts_with(b"[") && secret.iter().all(|c| c.is_ascii_digit() || b"[], ".contains(c)))
            {
                return false;
            }
            // A constant's name (`__X32_SYSCALL_BIT`) or a dereference (`*secret_key`).
            if !quoted
                && (secret.iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
                    && secret.contains(&b'_')
                    || secret.starts_with(b"*"))
            {
                return false;
            }
            if !quoted
                && (secret.starts_with(b"|")
                    || (secret.ends_with(b"!") && is_word_like(&secret[..secret.len() - 1]))
                    || (secret.ends_with(b".") && is_word_like(secret)))
            {
                return false;
            }
            if !quoted && is_reference(secret) {
                return false;
            }
            if is_word_like(secret)
                && (secret.len() < 20 || !quoted || secret.iter().any(|c| matches!(c, b'_' | b'-' | b'.')))
            {
                return false;
            }
            if char_classes(secret) < 2 && secret.len() < 20 {
                return false;
            }
            shannon_entropy(secret) > generic_entropy_threshold(secret.len())
        }
        Check::Dotenv => {
            let lower = secret.to_ascii_lowercase();
            let key = dotenv_key(matched);
            !(secret.is_empty()
                || ["true", "false", "yes", "no", "on", "off", "null", "none", "nil"]
                    .iter()
                    .any(|w| lower == w.as_bytes())
                || DEFAULT_CREDENTIALS.iter().any(|w| lower == w.as_bytes())
                || (secret.iter().all(u8::is_ascii_digit) && secret.len() < 8)
                || ((lower.starts_with(b"http://") || lower.starts_with(b"https://")) && !secret.contains(&b'@'))
                || secret.starts_with(b"/")
                || secret.starts_with(b"./")
                || secret.starts_with(b"~/")
                || lower.starts_with(b"$")
                || ends_with_descriptive_suffix(key))
        }
        Check::AwsSecret => {
            secret.iter().any(u8::is_ascii_uppercase)
                && secret.iter().any(u8::is_ascii_lowercase)
                && secret.iter().any(|c| c.is_ascii_digit() || matches!(c, b'/' | b'+'))
                && shannon_entropy(secret) > 3.8
        }
        Check::PemBody => {
            // Body between the header's closing dashes and the footer.
            let body_start = matched.windows(5).skip(5).position(|w| w == b"-----").map(|p| p + 10).unwrap_or(0);
            let body_end = matched.windows(8).rposition(|w| w == b"-----END").unwrap_or(matched.len());
            let body = &matched[body_start.min(body_end)..body_end];
            body.iter().filter(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/')).count() >= 40
        }
        Check::UrlPassword => {
            let lower = secret.to_ascii_lowercase();
            let user = url_user(matched);
            !(DEFAULT_CREDENTIALS.iter().any(|w| lower == w.as_bytes())
                || (!user.is_empty() && user == secret)
                || secret.starts_with(b"$")
                || secret.starts_with(b":"))
        }
        Check::GithubChecksum => {
            // Classic tokens carry a CRC32 tail; a token whose tail does not match is a fake
            // (test fixture, documentation). Longer refresh tokens have no known tail: keep them.
            match std::str::from_utf8(secret) {
                Ok(token) if token.len() == 40 => github_token_checksum_ok(token),
                _ => true,
            }
        }
        Check::Jwt => !secret.starts_with(JWT_IO_SAMPLE_HEADER_PAYLOAD.as_bytes()),
        Check::Keyed => keyed_value_ok(secret),
        Check::KeyAssignment => {
            // `key` names anything (i18n keys, cache keys, public keys), so this asks more
            // than `generic-secret`: long, letters and digits mixed, high entropy, and a key
            // that is not about public or identifying material.
            let key = assignment_key(matched).to_ascii_lowercase();
            let has = |needle: &[u8]| key.windows(needle.len()).any(|w| w == needle);
            let letters = secret.iter().filter(|c| c.is_ascii_alphabetic()).count();
            let digits = secret.iter().filter(|c| c.is_ascii_digit()).count();
            !(has(b"public") || has(b"pub_") || has(b"pubkey") || has(b"cache") || has(b"i18n") || has(b"idempotency"))
                && secret.len() >= 20
                && letters >= 4
                && digits >= 2
                && !secret.contains(&b'.')
                && !is_digest_or_uuid(secret)
                && !common_value_rejects(secret)
                && char_classes(secret) >= 2
                && shannon_entropy(secret) >= 3.5
        }
        Check::BasicAuth => basic_credentials(secret).is_some(),
        Check::NamedPassword => {
            // `curl -u user:password` reports `user:password`; `.netrc` reports the password.
            // `user:` or `:password` (curl prompts for the missing half): the other half is it.
            let password = match secret.iter().position(|&c| c == b':') {
                Some(p) if p + 1 == secret.len() => &secret[..p],
                Some(p) => &secret[p + 1..],
                None => secret,
            };
            let password = password.strip_prefix(b"'").or_else(|| password.strip_prefix(b"\"")).unwrap_or(password);
            // `-u 1000:1000` (docker, sudo): a uid and gid, not credentials.
            let numeric = |v: &[u8]| !v.is_empty() && v.iter().all(u8::is_ascii_digit);
            let user = secret.iter().position(|&c| c == b':').map_or(&secret[..0], |p| &secret[..p]);
            if numeric(user) && numeric(password) {
                return false;
            }
            let lower = password.to_ascii_lowercase();
            password.len() >= 3
                && !DEFAULT_CREDENTIALS.iter().any(|w| lower == w.as_bytes())
                && !NON_SECRET_VALUES.iter().any(|w| lower == w.as_bytes())
                && !password.starts_with(b"$")
                && !password.starts_with(b"%")
                && !is_placeholder_like(password)
        }
    }
}

/// A value under a key naming a provider: the regex fixed its shape, so this only rejects
/// words, filler and values too uniform to be random.
fn keyed_value_ok(secret: &[u8]) -> bool {
    // Letters only is a word or an identifier, unless the case changes like random text.
    let upper = secret.iter().filter(|c| c.is_ascii_uppercase()).count();
    let lower = secret.iter().filter(|c| c.is_ascii_lowercase()).count();
    let random_letters = upper >= 3 && lower >= 3 && secret.iter().all(u8::is_ascii_alphabetic);
    if secret.iter().all(|&c| c == secret[0]) || (is_word_like(secret) && !random_letters) {
        return false;
    }
    let lower = secret.to_ascii_lowercase();
    if NON_SECRET_VALUES.iter().any(|w| lower == w.as_bytes()) {
        return false;
    }
    // Random strings of 16+ characters over 16+ symbols have entropy well above 3 bits; keep
    // the bar low so hex and decimal secrets pass.
    let bar = if secret.len() >= 16 { 2.5 } else { generic_entropy_threshold(secret.len()).min(2.5) };
    shannon_entropy(secret) > bar
}

/// `user:password` decoded from base64, if `encoded` is base64 of printable text with a colon
/// between a non-empty user (or token name) and a non-empty password.
pub(crate) fn basic_credentials(encoded: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    use base64::Engine as _;
    // Lenient: padding optional, and a value cut short (a log line) still decodes up to its
    // last whole group.
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let body = encoded.iter().position(|&c| c == b'=').map_or(encoded, |p| &encoded[..p]);
    let decoded = lenient.decode(encoded).or_else(|_| lenient.decode(&body[..body.len() / 4 * 4])).ok()?;
    if decoded.len() < 3 || !decoded.iter().all(|&c| (0x20..0x7f).contains(&c)) {
        return None;
    }
    let colon = decoded.iter().position(|&c| c == b':')?;
    let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
    if password.is_empty() || is_placeholder_like(password) {
        return None;
    }
    let lower = password.to_ascii_lowercase();
    if DEFAULT_CREDENTIALS.iter().any(|w| lower == w.as_bytes()) && password.len() < 9 {
        return None;
    }
    Some((user.to_vec(), password.to_vec()))
}

/// The header and payload of the sample token on jwt.io (`"name": "John Doe"`).
const JWT_IO_SAMPLE_HEADER_PAYLOAD: &str =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ";

/// The key of a `.env` line.
fn dotenv_key(matched: &[u8]) -> &[u8] {
    let start = matched.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(0);
    let mut rest = &matched[start..];
    if rest.starts_with(b"export") {
        let skip = rest[6..].iter().take_while(|c| c.is_ascii_whitespace()).count();
        rest = &rest[6 + skip..];
    }
    let end = rest.iter().position(|c| matches!(c, b'=' | b' ' | b'\t')).unwrap_or(rest.len());
    &rest[..end]
}

/// The user of a `scheme://user:password@` match.
fn url_user(matched: &[u8]) -> &[u8] {
    let Some(at) = matched.windows(3).position(|w| w == b"://") else { return b"" };
    let rest = &matched[at + 3..];
    let end = rest.iter().position(|&c| c == b':').unwrap_or(rest.len());
    &rest[..end]
}

fn secret_is_quoted(matched: &[u8], secret: &[u8]) -> bool {
    // The secret is a suffix-ish slice of the match; quoted when the match ends with a quote
    // right after it.
    matches!(matched.last(), Some(b'"' | b'\'' | b'`')) && matched.len() > secret.len()
}

/// Whether a classic GitHub token (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` + 36) carries a valid
/// checksum: the last 6 characters are the base62 CRC32 of the 30 before them.
///
/// A mismatch does not make a token safe (formats change); a match is strong evidence.
pub fn github_token_checksum_ok(token: &str) -> bool {
    let Some((_, body)) = token.split_once('_') else { return false };
    let body = body.as_bytes();
    if body.len() != 36 || !body.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let (random, check) = body.split_at(30);
    github_checksum(random) == check
}

/// The 6-character base62 CRC32 tail GitHub and npm append to a token's random part.
pub(crate) fn github_checksum(random: &[u8]) -> [u8; 6] {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut crc = crc32(random);
    let mut encoded = [b'0'; 6];
    for slot in encoded.iter_mut().rev() {
        *slot = ALPHABET[(crc % 62) as usize];
        crc /= 62;
    }
    encoded
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_of_uniform_and_constant_text() {
        assert_eq!(shannon_entropy(b"aaaaaaaa"), 0.0);
        assert!((shannon_entropy(b"abcdefgh") - 3.0).abs() < 1e-6);
        assert_eq!(shannon_entropy(b""), 0.0);
    }

    #[test]
    fn placeholders_are_recognised() {
        for p in [
            "AKIAIOSFODNN7EXAMPLE",
            "your_api_key_here",
            "<token>",
            "${API_KEY}",
            "{{ secret }}",
            "xxxxxxxxxxxx",
            "«secret:jwt:1»",
            "changeme123",
        ] {
            assert!(is_placeholder_like(p.as_bytes()), "{p}");
        }
        assert!(!is_placeholder_like(b"s3cr3tP4ssw0rd!"));
    }

    /// Regression: Rust paths and macros after a `token` key were reported
    /// by the hundred in real crates (`use winnow::token::take_while`).
    #[test]
    fn assignment_values_that_are_code_are_not_secrets() {
        let scanner = crate::Scanner::builtin();
        for line in [
            "use winnow::token::take_while;",
            "pub bracket_token: token::Bracket,",
            "const IGNORE_TOKENS: &str = stringify! {",
            "let to_tokens = |tokens: &mut TokenStream| {};",
            "fn f(tokens: proc_macro2::TokenStream) {}",
            "Token::RecursivePrefix => 1,",
            "a[title=\"struct syn::token::Abstract\"]",
            "pub const SYS_memfd_secret: c_long = __X32_SYSCALL_BIT + 447;",
            "secret_key: *secret_key,",
            "for file in &[\"/etc/passwd\", \"/dev/null\"] {",
            "let encoded_signing_key_too_long = \"[62,70,27,163,92,182,11,3,77]\";",
        ] {
            assert!(scanner.scan(line.as_bytes()).is_empty(), "{line}");
        }
        assert_eq!(scanner.scan(b"api_token: Zx9vQ2mN7pL4kR8s").len(), 1);
    }

    #[test]
    fn assignment_check_rejects_references_and_accepts_literals() {
        let ok = |m: &str, s: &str| passes(Check::Assignment, m.as_bytes(), s.as_bytes());
        assert!(ok("password = \"s3cr3tP4ss!\"", "s3cr3tP4ss!"));
        assert!(ok("DB_PASSWORD=hunter22xyz", "hunter22xyz"));
        assert!(!ok("password = get_password(", "get_password("));
        assert!(!ok("token = config.auth.token", "config.auth.token"));
        assert!(!ok("password: SecretString", "SecretString"));
        assert!(!ok("token_url = \"https_auth_url\"", "https_auth_url"));
        assert!(!ok("secret = \"550e8400-e29b-41d4-a716-446655440000\"", "550e8400-e29b-41d4-a716-446655440000"));
        assert!(!ok(
            "token = \"da39a3ee5e6b4b0d3255bfef95601890afd80709\"",
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        ));
        assert!(!ok("max_tokens = 100000000", "100000000"));
        assert!(!ok("grant_type_token = \"client_credentials\"", "client_credentials"));
    }

    #[test]
    fn basic_credentials_need_a_real_password() {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert!(basic_credentials(b64("ci-bot:Zx9vQ2mN7pL4kR8s").as_bytes()).is_some());
        // Cut short (a log line) but with the password's start: still credentials.
        let cut = b64("ci-bot:Zx9vQ2mN7pL4kR8sQ2mN7pL4");
        assert!(basic_credentials(&cut.as_bytes()[..cut.len() - 3]).is_some());
        for not in ["user:password", "admin:", "no colon at all", "alice:${PASSWORD}", "bob:xxxxxxxxxxxx"] {
            assert!(basic_credentials(b64(not).as_bytes()).is_none(), "{not}");
        }
        assert!(basic_credentials(b"authentication").is_none());
    }

    #[test]
    fn named_passwords_reject_references_and_defaults() {
        let ok = |s: &str| passes(Check::NamedPassword, s.as_bytes(), s.as_bytes());
        assert!(ok("deploy:Zx9vQ2mN7pL4kR8s"));
        assert!(ok(":Zx9vQ2mN7pL4kR8s") && ok("Zx9vQ2mN7pL4kR8s:"));
        for not in ["user:password", "me:$TOKEN", "x:%NUGET_PASSWORD%", "a:ab", "u:<password>", "1000:1000"] {
            assert!(!ok(not), "{not}");
        }
    }

    #[test]
    fn github_checksum_round_trip() {
        let random = "abcdefghijklmnopqrstuvwxyz0123";
        let tail = github_checksum(random.as_bytes());
        let token = format!("ghp_{random}{}", std::str::from_utf8(&tail).unwrap());
        assert!(github_token_checksum_ok(&token));
        assert!(!github_token_checksum_ok(&format!("ghp_{random}000000")));
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
