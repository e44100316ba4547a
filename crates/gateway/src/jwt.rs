//! JSON Web Tokens as an OIDC provider signs them (RFC 7515, 7517, 7518,
//! 7519), verified with `ring`, which the TLS stack already brings: RSA
//! (PKCS#1 v1.5 and PSS, 2048 bits or more) and ECDSA on P-256 and P-384.
//! Nothing else is accepted: no `none`, no HMAC (a public key must never
//! serve as a shared secret), and a key verifies only the algorithm family
//! it is (and the one algorithm its JWK names, if it names one).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};

/// A signature algorithm this gateway verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
}

impl Alg {
    /// The algorithm a JOSE header or JWK names, if it is one of these.
    pub fn parse(name: &str) -> Option<Alg> {
        Some(match name {
            "RS256" => Alg::RS256,
            "RS384" => Alg::RS384,
            "RS512" => Alg::RS512,
            "PS256" => Alg::PS256,
            "PS384" => Alg::PS384,
            "PS512" => Alg::PS512,
            "ES256" => Alg::ES256,
            "ES384" => Alg::ES384,
            _ => return None,
        })
    }
}

/// A public key from a key set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA: modulus and exponent, big-endian.
    Rsa {
        /// `n`.
        n: Vec<u8>,
        /// `e`.
        e: Vec<u8>,
    },
    /// P-256: the uncompressed point (0x04, x, y).
    P256(Vec<u8>),
    /// P-384: the uncompressed point.
    P384(Vec<u8>),
}

/// One usable key of a JWK set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetKey {
    /// Its `kid`.
    pub kid: String,
    /// The key.
    pub key: PublicKey,
    /// The one algorithm its JWK pins it to, if it names one.
    pub alg: Option<Alg>,
}

impl SetKey {
    /// Reads one JWK; `None` for a key this gateway cannot use (no `kid`,
    /// not for signatures, a symmetric or unknown type, a malformed value).
    pub fn from_jwk(jwk: &serde_json::Value) -> Option<SetKey> {
        let field = |name: &str| jwk.get(name).and_then(|v| v.as_str());
        let bytes = |name: &str| field(name).and_then(|v| B64.decode(v).ok()).filter(|b| !b.is_empty());
        let kid = field("kid").filter(|k| !k.is_empty())?.to_string();
        if field("use").is_some_and(|u| u != "sig") {
            return None;
        }
        let alg = match field("alg") {
            Some(name) => Some(Alg::parse(name)?),
            None => None,
        };
        let key = match (field("kty")?, field("crv")) {
            ("RSA", _) => PublicKey::Rsa { n: bytes("n")?, e: bytes("e")? },
            ("EC", Some(curve @ ("P-256" | "P-384"))) => {
                let (x, y) = (bytes("x")?, bytes("y")?);
                let len = if curve == "P-256" { 32 } else { 48 };
                if x.len() != len || y.len() != len {
                    return None;
                }
                let point = [&[4u8][..], &x, &y].concat();
                if curve == "P-256" { PublicKey::P256(point) } else { PublicKey::P384(point) }
            }
            _ => return None,
        };
        if alg.is_some_and(|a| !key.fits(a)) {
            return None;
        }
        Some(SetKey { kid, key, alg })
    }
}

impl PublicKey {
    /// Whether this key is of the family `alg` needs.
    pub fn fits(&self, alg: Alg) -> bool {
        use Alg::*;
        matches!(
            (self, alg),
            (PublicKey::Rsa { .. }, RS256 | RS384 | RS512 | PS256 | PS384 | PS512)
                | (PublicKey::P256(_), ES256)
                | (PublicKey::P384(_), ES384)
        )
    }

    /// Whether `sig` is this key's signature by `alg` over `message`.
    pub fn verify(&self, alg: Alg, message: &[u8], sig: &[u8]) -> bool {
        use Alg::*;
        match self {
            PublicKey::Rsa { n, e } => {
                let params: &signature::RsaParameters = match alg {
                    RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                    PS384 => &signature::RSA_PSS_2048_8192_SHA384,
                    PS512 => &signature::RSA_PSS_2048_8192_SHA512,
                    ES256 | ES384 => return false,
                };
                RsaPublicKeyComponents { n, e }.verify(params, message, sig).is_ok()
            }
            PublicKey::P256(point) if alg == ES256 => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).verify(message, sig).is_ok()
            }
            PublicKey::P384(point) if alg == ES384 => {
                UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point).verify(message, sig).is_ok()
            }
            _ => false,
        }
    }
}

/// A compact JWS taken apart, its signature not yet checked.
#[derive(Debug)]
pub struct Parts<'a> {
    /// The header's `alg`, as written.
    pub alg: String,
    /// The header's `kid`.
    pub kid: Option<String>,
    /// The claims.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// What the signature covers: `header.payload` as sent.
    pub signed: &'a [u8],
    /// The signature.
    pub signature: Vec<u8>,
}

/// Splits a compact JWS (`header.payload.signature`, base64url without
/// padding); `None` when it is not one, or its header or claims are not
/// JSON objects.
pub fn parts(token: &str) -> Option<Parts<'_>> {
    let mut pieces = token.split('.');
    let (header, payload, sig) = (pieces.next()?, pieces.next()?, pieces.next()?);
    if pieces.next().is_some() {
        return None;
    }
    let object = |text: &str| -> Option<serde_json::Map<String, serde_json::Value>> {
        match serde_json::from_slice(&B64.decode(text).ok()?).ok()? {
            serde_json::Value::Object(map) => Some(map),
            _ => None,
        }
    };
    let head = object(header)?;
    // A header that asks for something this gateway does not do is not read past.
    if head.contains_key("crit") {
        return None;
    }
    Some(Parts {
        alg: head.get("alg")?.as_str()?.to_string(),
        kid: head.get("kid").and_then(|k| k.as_str()).map(str::to_string),
        claims: object(payload)?,
        signed: &token.as_bytes()[..header.len() + 1 + payload.len()],
        signature: B64.decode(sig).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_unknown_and_unfit_keys_are_passed_over() {
        let ec = serde_json::json!({"kty": "EC", "kid": "a", "crv": "P-256",
            "x": B64.encode([1u8; 32]), "y": B64.encode([2u8; 32])});
        assert!(matches!(SetKey::from_jwk(&ec).unwrap().key, PublicKey::P256(ref p) if p.len() == 65));
        let oct = serde_json::json!({"kty": "oct", "kid": "s", "k": B64.encode(b"secret")});
        assert_eq!(SetKey::from_jwk(&oct), None);
        let mut enc = ec.clone();
        enc["use"] = "enc".into();
        assert_eq!(SetKey::from_jwk(&enc), None);
        let mut pinned_wrong = ec.clone();
        pinned_wrong["alg"] = "RS256".into();
        assert_eq!(SetKey::from_jwk(&pinned_wrong), None);
        let mut hs = ec.clone();
        hs["alg"] = "HS256".into();
        assert_eq!(SetKey::from_jwk(&hs), None);
        let mut short = ec;
        short["x"] = B64.encode([1u8; 31]).into();
        assert_eq!(SetKey::from_jwk(&short), None);
    }

    #[test]
    fn only_compact_tokens_with_object_header_and_claims_are_read() {
        let h = B64.encode(br#"{"alg":"ES256","kid":"k"}"#);
        let c = B64.encode(br#"{"sub":"x"}"#);
        let token = format!("{h}.{c}.{}", B64.encode([9u8; 64]));
        let p = parts(&token).unwrap();
        assert_eq!((p.alg.as_str(), p.kid.as_deref()), ("ES256", Some("k")));
        assert_eq!(p.signed, format!("{h}.{c}").as_bytes());
        assert!(parts(&format!("{token}.x")).is_none());
        assert!(parts(&format!("{h}.{}.AA", B64.encode(b"[1]"))).is_none());
        let crit = B64.encode(br#"{"alg":"ES256","crit":["b64"],"b64":false}"#);
        assert!(parts(&format!("{crit}.{c}.AA")).is_none());
        // An EC key never verifies an RSA algorithm, and the reverse.
        let key = PublicKey::P256(vec![4; 65]);
        assert!(!key.fits(Alg::RS256) && !key.verify(Alg::RS256, b"m", b"s"));
        assert!(!PublicKey::Rsa { n: vec![1], e: vec![3] }.fits(Alg::ES256));
    }
}
