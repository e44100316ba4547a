//! Principals from an OIDC provider's ID tokens: a provider on loopback
//! serving its discovery document and key set, keys made by `openssl`,
//! tokens signed with ring (as a provider would sign them).

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

/// How a test key signs.
enum Signing {
    Rsa(ring::signature::RsaKeyPair),
    Ec(ring::signature::EcdsaKeyPair),
}

/// A key pair made by `openssl`: the signing key and its JWK.
struct TestKey {
    signing: Signing,
    alg: &'static str,
    jwk: serde_json::Value,
    /// The public key as PEM (the "secret" of the HS256 confusion attack).
    public_pem: Vec<u8>,
}

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("openssl").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn rsa_key(dir: &Path, kid: &str) -> TestKey {
    let pem = format!("{kid}.pem");
    openssl(dir, &["genrsa", "-out", &pem, "2048"]);
    let der = openssl(dir, &["rsa", "-in", &pem, "-outform", "DER", "-traditional"]);
    let modulus = String::from_utf8(openssl(dir, &["rsa", "-in", &pem, "-noout", "-modulus"])).unwrap();
    let n = hex::decode(modulus.trim().strip_prefix("Modulus=").unwrap()).unwrap();
    TestKey {
        signing: Signing::Rsa(ring::signature::RsaKeyPair::from_der(&der).unwrap()),
        alg: "RS256",
        jwk: serde_json::json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": B64.encode(n), "e": "AQAB"}),
        public_pem: openssl(dir, &["rsa", "-in", &pem, "-pubout"]),
    }
}

fn ec_key(dir: &Path, kid: &str) -> TestKey {
    let pem = format!("{kid}.pem");
    openssl(dir, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &pem]);
    let der = openssl(dir, &["pkcs8", "-topk8", "-nocrypt", "-in", &pem, "-outform", "DER"]);
    let public = openssl(dir, &["ec", "-in", &pem, "-pubout", "-outform", "DER"]);
    // The DER ends with the uncompressed point: 0x04, x, y.
    let point = &public[public.len() - 65..];
    assert_eq!(point[0], 4);
    TestKey {
        signing: Signing::Ec(
            ring::signature::EcdsaKeyPair::from_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &der,
                &ring::rand::SystemRandom::new(),
            )
            .unwrap(),
        ),
        alg: "ES256",
        jwk: serde_json::json!({"kty": "EC", "kid": kid, "crv": "P-256", "use": "sig",
            "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..])}),
        public_pem: openssl(dir, &["ec", "-in", &pem, "-pubout"]),
    }
}

/// The identity provider: discovery at its root, the key set at `/jwks`.
struct Provider {
    issuer: String,
    keys: Arc<Mutex<Vec<serde_json::Value>>>,
    jwks_fetches: Arc<AtomicUsize>,
}

async fn provider(keys: Vec<serde_json::Value>) -> Provider {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let keys = Arc::new(Mutex::new(keys));
    let jwks_fetches = Arc::new(AtomicUsize::new(0));
    let (k, n, iss) = (keys.clone(), jwks_fetches.clone(), issuer.clone());
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || {
                let iss = iss.clone();
                async move { axum::Json(serde_json::json!({"issuer": iss, "jwks_uri": format!("{iss}/jwks")})) }
            }),
        )
        .route(
            "/jwks",
            axum::routing::get(move || {
                let (k, n) = (k.clone(), n.clone());
                async move {
                    n.fetch_add(1, Ordering::SeqCst);
                    axum::Json(serde_json::json!({"keys": *k.lock().unwrap()}))
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Provider { issuer, keys, jwks_fetches }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// An ID token for `email` in `groups`, as `p` issues them; `change` edits the claims first.
fn token(
    p: &Provider,
    key: &TestKey,
    kid: &str,
    email: &str,
    groups: &[&str],
    change: impl FnOnce(&mut serde_json::Value),
) -> String {
    let mut claims = serde_json::json!({"iss": p.issuer, "aud": "airlock-gateway", "sub": format!("sub-{email}"),
        "email": email, "email_verified": true, "groups": groups, "iat": now(), "exp": now() + 300});
    change(&mut claims);
    let header = serde_json::json!({"alg": key.alg, "typ": "JWT", "kid": kid});
    let signed = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
    let rng = ring::rand::SystemRandom::new();
    let signature = match &key.signing {
        Signing::Rsa(pair) => {
            let mut sig = vec![0; pair.public().modulus_len()];
            pair.sign(&ring::signature::RSA_PKCS1_SHA256, &rng, signed.as_bytes(), &mut sig).unwrap();
            sig
        }
        Signing::Ec(pair) => pair.sign(&rng, signed.as_bytes()).unwrap().as_ref().to_vec(),
    };
    format!("{signed}.{}", B64.encode(signature))
}

/// An HS256 token over `claims` with `secret` as the key: what an attacker
/// makes of a provider's public key.
fn hs256_token(kid: &str, claims: &serde_json::Value, secret: &[u8]) -> String {
    let header = serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": kid});
    let signed = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret), signed.as_bytes());
    format!("{signed}.{}", B64.encode(tag.as_ref()))
}

/// `[oidc]` over `p`, with `extra` lines.
fn oidc(p: &Provider, extra: &str) -> airlock_gateway::oidc::OidcConfig {
    let text = format!(
        "issuer = {:?}\naudience = \"airlock-gateway\"\n\
         roles = {{ \"airlock-admins\" = \"admin\", \"developers\" = \"developer\", \"auditors\" = \"auditor\" }}\n{extra}",
        p.issuer
    );
    toml::from_str::<airlock_gateway::oidc::OidcSection>(&text).unwrap().check(Path::new("gateway.toml")).unwrap()
}

async fn gateway(config: airlock_gateway::oidc::OidcConfig, roles: &str) -> Env {
    let roles = GatewayConfig::parse(roles, Path::new("roles.toml"), &|_| None).unwrap().roles;
    Env::start_tuned(true, move |c| {
        c.oidc = Some(config);
        c.roles = roles;
    })
    .await
}

async fn chat_as(env: &Env, bearer: &str, model: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/chat/completions", env.gateway))
        .bearer_auth(bearer)
        .json(&chat(model, "hello"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_names_the_principal_and_bad_ones_never_reach_the_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let (rsa, ec) = (rsa_key(dir.path(), "r1"), ec_key(dir.path(), "e1"));
    let p = provider(vec![rsa.jwk.clone(), ec.jwk.clone()]).await;
    // No jwks_url: discovered from the issuer.
    let env = gateway(oidc(&p, ""), "").await;

    let good = token(&p, &rsa, "r1", "alice@example.com", &["developers"], |_| {});
    assert_eq!(chat_as(&env, &good, "gpt-4o").await.0, 200);
    let by_ec = token(&p, &ec, "e1", "bob@example.com", &["airlock-admins", "sales"], |_| {});
    assert_eq!(chat_as(&env, &by_ec, "gpt-4o").await.0, 200);
    // Within the leeway: expired 30 s ago.
    let skewed = token(&p, &rsa, "r1", "carol@example.com", &["developers"], |c| c["exp"] = (now() - 30).into());
    assert_eq!(chat_as(&env, &skewed, "gpt-4o").await.0, 200);
    let log = env.audit(6).await;
    let principals: Vec<&str> =
        log.iter().filter(|e| e.0 == "model_request").map(|e| e.1["principal"].as_str().unwrap()).collect();
    assert_eq!(principals, ["oidc:alice@example.com", "oidc:bob@example.com", "oidc:carol@example.com"]);
    assert_eq!(p.jwks_fetches.load(Ordering::SeqCst), 1, "fetched once, at start");

    let (h, payload, sig) = {
        let parts: Vec<&str> = good.split('.').collect();
        (parts[0].to_string(), parts[1].to_string(), parts[2].to_string())
    };
    let mut forged: serde_json::Value = serde_json::from_slice(&B64.decode(&payload).unwrap()).unwrap();
    forged["email"] = "mallory@example.com".into();
    forged["groups"] = serde_json::json!(["airlock-admins"]);
    let tampered = format!("{h}.{}.{sig}", B64.encode(forged.to_string()));
    let none = format!(
        "{}.{payload}.AAAA",
        B64.encode(serde_json::json!({"alg": "none", "typ": "JWT", "kid": "r1"}).to_string())
    );
    let hs256 = hs256_token(
        "r1",
        &serde_json::from_slice::<serde_json::Value>(&B64.decode(&payload).unwrap()).unwrap(),
        &rsa.public_pem,
    );
    let hs256_ec = hs256_token(
        "e1",
        &serde_json::json!({"iss": p.issuer, "aud": "airlock-gateway", "email": "x@example.com", "exp": now() + 300}),
        &ec.public_pem,
    );
    let bad = [
        (
            "expired",
            token(&p, &rsa, "r1", "alice@example.com", &["developers"], |c| c["exp"] = (now() - 61 - 60).into()),
            "expired",
        ),
        (
            "not yet valid",
            token(&p, &rsa, "r1", "alice@example.com", &["developers"], |c| c["nbf"] = (now() + 600).into()),
            "not valid yet",
        ),
        (
            "wrong audience",
            token(&p, &rsa, "r1", "alice@example.com", &["developers"], |c| c["aud"] = "another-app".into()),
            "aud",
        ),
        (
            "wrong issuer",
            token(&p, &rsa, "r1", "alice@example.com", &["developers"], |c| c["iss"] = "https://evil.example".into()),
            "issuer",
        ),
        (
            "no exp",
            token(&p, &rsa, "r1", "alice@example.com", &["developers"], |c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            "exp",
        ),
        (
            "EC key named for an RSA signature",
            token(&p, &rsa, "e1", "alice@example.com", &["developers"], |_| {}),
            "RS256",
        ),
        ("tampered payload", tampered, "signature"),
        ("alg none", none, "alg \\\"none\\\" is refused"),
        ("HS256 with the RSA public key as secret", hs256, "HS256"),
        ("HS256 with the EC public key as secret", hs256_ec, "HS256"),
    ];
    for (what, t, says) in &bad {
        let (status, body) = chat_as(&env, t, "gpt-4o").await;
        assert_eq!(status, 401, "{what}: {body}");
        assert!(body.contains(says), "{what}: {body}");
        assert!(!body.contains(t.as_str()), "{what}: the token is echoed: {body}");
    }
    assert_eq!(p.jwks_fetches.load(Ordering::SeqCst), 1, "known kids need no fetch");

    // An unknown kid: one refresh, then refused; another at once: no fetch.
    let (status, body) =
        chat_as(&env, &token(&p, &rsa, "r9", "alice@example.com", &["developers"], |_| {}), "gpt-4o").await;
    assert_eq!(status, 401);
    assert!(body.contains("has no key \\\"r9\\\""), "{body}");
    assert_eq!(p.jwks_fetches.load(Ordering::SeqCst), 2);
    for kid in ["r10", "r11", "r12"] {
        let (status, _) =
            chat_as(&env, &token(&p, &rsa, kid, "alice@example.com", &["developers"], |_| {}), "gpt-4o").await;
        assert_eq!(status, 401);
    }
    assert_eq!(p.jwks_fetches.load(Ordering::SeqCst), 2, "a flood of unknown kids fetches at most once per 30 s");

    assert_eq!(env.seen.lock().unwrap().bodies.len(), 3, "no refused token reached the upstream");
    // A JWT-shaped bearer goes to OIDC, never to the key table; keys still work.
    assert_eq!(env.post("/v1/chat/completions", chat("gpt-4o", "hi")).send().await.unwrap().status(), 200);
    let recorded = serde_json::to_string(&env.audit(8).await).unwrap();
    assert!(!recorded.contains(&good) && !recorded.contains(&sig), "the token is on the record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_from_groups_apply_with_their_limits() {
    let dir = tempfile::tempdir().unwrap();
    let rsa = rsa_key(dir.path(), "r1");
    let p = provider(vec![rsa.jwk.clone()]).await;
    let config = oidc(&p, &format!("jwks_url = \"{}/jwks\"", p.issuer));
    let env = gateway(config, "[roles.developer]\nrequests_per_minute = 1\n").await;

    let auditor = token(&p, &rsa, "r1", "audrey@example.com", &["auditors"], |_| {});
    let (status, body) = chat_as(&env, &auditor, "gpt-4o").await;
    assert_eq!(status, 403, "{body}");
    let unmapped = token(&p, &rsa, "r1", "sam@example.com", &["sales"], |_| {});
    let (status, body) = chat_as(&env, &unmapped, "gpt-4o").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("maps to no role"), "{body}");
    // A developer's budget: one request a minute, counted for the OIDC principal.
    let dev = token(&p, &rsa, "r1", "dana@example.com", &["developers"], |_| {});
    assert_eq!(chat_as(&env, &dev, "gpt-4o").await.0, 200);
    let (status, body) = chat_as(&env, &dev, "gpt-4o").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(env.seen.lock().unwrap().bodies.len(), 1);
    // With a default role, the unmapped group is served.
    let env = gateway(oidc(&p, "default_role = \"developer\""), "").await;
    assert_eq!(chat_as(&env, &unmapped, "gpt-4o").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_at_the_provider_is_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (rsa_key(dir.path(), "r1"), rsa_key(dir.path(), "r2"));
    let p = provider(vec![old.jwk.clone()]).await;
    let env = gateway(oidc(&p, ""), "").await;
    let by_old = token(&p, &old, "r1", "alice@example.com", &["developers"], |_| {});
    assert_eq!(chat_as(&env, &by_old, "gpt-4o").await.0, 200);

    *p.keys.lock().unwrap() = vec![new.jwk.clone()];
    let by_new = token(&p, &new, "r2", "alice@example.com", &["developers"], |_| {});
    let (status, body) = chat_as(&env, &by_new, "gpt-4o").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(p.jwks_fetches.load(Ordering::SeqCst), 2);
    // The retired key is gone from the set.
    let (status, body) = chat_as(&env, &by_old, "gpt-4o").await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_set_no_token_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let rsa = rsa_key(dir.path(), "r1");
    let p = provider(vec![rsa.jwk.clone()]).await;
    // A key set URL where nothing listens.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let env = gateway(oidc(&p, &format!("jwks_url = \"http://{closed}/jwks\"")), "").await;
    let (status, body) =
        chat_as(&env, &token(&p, &rsa, "r1", "alice@example.com", &["developers"], |_| {}), "gpt-4o").await;
    assert_eq!(status, 401);
    assert!(body.contains("no key set from the identity provider"), "{body}");
    assert!(env.seen.lock().unwrap().bodies.is_empty());
}
